"""Authoring tools for course maintainers: lab sources into notebooks (``build-notebooks``)."""
