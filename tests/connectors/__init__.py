"""Connector tests: real files, real servers, recorded or documented payloads."""
