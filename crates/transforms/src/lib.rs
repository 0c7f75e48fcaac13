//! AppFlow tasks (Filter, Map, Mask, ...) compiled into a plan and applied to Arrow batches.
