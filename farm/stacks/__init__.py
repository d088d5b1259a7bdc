"""Systems under test: stack manifests, and the drivers that bring them up and down."""
