"""Small evaluation sets written for builder, one per task, shipped in the package."""
