"""The desktop app (Qt widgets). It draws and edits the model in designer.core; it never holds
state the model doesn't, and the layers below never import it."""
