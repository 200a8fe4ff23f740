"""Tests for tzurot.conversations."""
