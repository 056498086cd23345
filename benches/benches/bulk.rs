//! TODO: the bulk bench, once `get_or_create_many` lands on main.
fn main() {}
