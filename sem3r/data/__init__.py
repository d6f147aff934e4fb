"""Data: readers that turn datasets on disk into a Scene, and procedural synthetic scenes."""
