"""Test configuration: Qt (when present) runs headless."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
