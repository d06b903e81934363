"""The flow of a request below the edge: ImageService, finding originals, intermediates. No Flask."""
