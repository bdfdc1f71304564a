"""Fakes of outside services (WeChat OAuth) for the tests and the local trial run."""
