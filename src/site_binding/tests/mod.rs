//! Tests of site binding as a whole: keys and tokens made here, signed with jsonwebtoken.

mod load;
mod props;
mod support;
mod verify;
