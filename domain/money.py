"""Exact money: ``Decimal`` yuan in the domain, integer fen in storage."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def to_cents(amount: Decimal) -> Decimal:
    """Round half up to the cent (分), the convention for posted amounts."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> int:
    """Yuan -> integer fen; refuses amounts finer than a cent instead of rounding them."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(CENT)


def has_at_most_cents(amount: Decimal) -> bool:
    return amount == amount.quantize(CENT)
