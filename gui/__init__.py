"""Bazar's Qt dashboard: views of the Qt-free cluster model in ``nodes/control``."""
