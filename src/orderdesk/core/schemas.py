"""The base of every API schema."""

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """A plain pydantic model that reads attributes as well as dicts. ninja's own `Schema` wraps
    every object it validates in a `DjangoGetter` (resolvers, managers, callables) — about a third
    of the CPU an order intake spent — and none of our schemas needs what that buys."""

    model_config = ConfigDict(from_attributes=True)
