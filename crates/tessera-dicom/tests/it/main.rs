//! Integration tests of tessera-dicom, in one test binary so they link once.

mod charset;
mod corpus;
mod generated;
mod matching;
mod properties;
mod support;
