"""The docked panels around the canvas: palette, inspector, summary and problems tables, and the
template gallery."""
