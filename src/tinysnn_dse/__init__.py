"""tinysnn-dse: design-space exploration for memory- and energy-efficient SNNs."""

__version__ = "0.1.0"
