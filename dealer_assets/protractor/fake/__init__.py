"""A fake Protractor for development and tests: the REST endpoints over an in-memory shop, callbacks to our
receiver when its data changes, and failures on demand. Real HTTP on loopback; no mocks."""

from dealer_assets.protractor.fake.app import Account, create_fake_app
from dealer_assets.protractor.fake.server import FakeProtractor, ServerThread
from dealer_assets.protractor.fake.shop import Shop, sample_vehicles

__all__ = ["Account", "FakeProtractor", "ServerThread", "Shop", "create_fake_app", "sample_vehicles"]
