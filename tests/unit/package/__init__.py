"""Unit tests of the package as a whole: public names, packaging, the testing helpers."""
