"""Evolution of drift parameters with evosax (issue 3): not built yet."""
