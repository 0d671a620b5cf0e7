"""Apps and helpers for the tests/test_deploy_*.py tests, which start real programs."""
