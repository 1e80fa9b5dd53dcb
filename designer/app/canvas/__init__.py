"""The canvas: cards and connections (items), the scene that follows the model, the view the user
zooms and pans."""
from designer.app.canvas.items import ERROR, GROUP_COLOURS, WARNING, EdgeItem, NodeItem
from designer.app.canvas.scene import CanvasScene, local_files, type_accepts_input
from designer.app.canvas.view import CanvasView

__all__ = ["CanvasScene", "CanvasView", "EdgeItem", "ERROR", "GROUP_COLOURS", "local_files",
           "NodeItem", "type_accepts_input", "WARNING"]
