"""The plugin's tests run users' test files through pytest's own ``pytester``."""

pytest_plugins = ["pytester"]
