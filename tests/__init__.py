"""alkit's tests, mirroring the package."""
