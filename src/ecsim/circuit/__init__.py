"""Layers L4-L6: basal-ganglia circuit, motor output, phenotypes, symptoms and scales."""
