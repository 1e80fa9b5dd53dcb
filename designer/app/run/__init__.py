"""Running a design on an image: the controller (worker threads), the Run panel, the activation
maps and the pictures made from arrays."""
