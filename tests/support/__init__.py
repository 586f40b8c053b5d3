"""Helpers the tests share: throwaway PostgreSQL clusters and stores, sweep workers as processes, tiny
presets, plugins written as text, population tolerances, and where the project's files are."""
