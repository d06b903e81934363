"""Storage backends behind one ObjectStore protocol, chosen by URL."""
