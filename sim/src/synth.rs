//! The synthetic session generator. (Implemented by the generator work.)
