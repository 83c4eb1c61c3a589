//! Tandem's infrastructure code. Empty until the local-stack and deploy issues land.
