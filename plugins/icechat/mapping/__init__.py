"""Who gets a copy: the custom ImId mapping file, directory checks, and the import plan."""
