"""Private plumbing shared by every public face: namespaces, validation, typing."""
