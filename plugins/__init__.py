"""rftbench's built-in plugins, installed as the package ``rftbench_plugins``.

Each module is one plugin, registered in ``pyproject.toml`` under the entry-point group
``rftbench`` exactly as a third-party plugin is; ``RFTBENCH_DISABLE_PLUGINS`` switches any off.
"""
