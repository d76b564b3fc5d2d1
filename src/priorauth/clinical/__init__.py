"""Pure medicine and coding arithmetic: body surface area, code formats, ages. No I/O."""
