"""The tests. Imported before any test module: they never read `.env.development` (the development values of
`make dev`), because `DEALER_SETTINGS_FILE` names the project's sample settings for the whole session."""

import os
from pathlib import Path

os.environ.setdefault(
    "DEALER_SETTINGS_FILE", str(Path(__file__).resolve().parents[1] / "data" / "config" / "dealer_feeds.yaml")
)
