"""Files: design files, templates (and later weights, images, exports). No widgets here."""
