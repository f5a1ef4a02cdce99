from tests.service.kit import service

__all__ = ["service"]
