//! Test driver.
