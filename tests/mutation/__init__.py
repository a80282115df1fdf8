"""Mutation check: apply known-bad edits to a copy of the package and watch the step tests fail (`make mutation`)."""
