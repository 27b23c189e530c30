"""Protractor work orders (CONTRACT section 7): callback receiver, API client, snapshots, links, write-back."""
