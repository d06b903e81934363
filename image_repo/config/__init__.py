"""Configuration: typed settings, their YAML and environment sources, the dump and the 2016 names."""
