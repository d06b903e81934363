"""The IIIF Image API 3.0 and 2.1: parsing requests and making info.json, without Flask."""
