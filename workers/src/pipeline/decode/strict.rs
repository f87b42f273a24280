//! A libjpeg error manager that treats corrupt-data *warnings* as errors.
//!
//! libjpeg only warns about truncated or corrupt entropy-coded data ("Corrupt JPEG data:
//! premature end of data segment", "bad Huffman code", ...) and fills the rest of the image
//! with grey, so a JPEG cut in half with `FF D9` appended would end `ready` with a grey
//! half. Like libjpeg-turbo's `TJFLAG_STOPONWARNING` (djpeg `-strict`), every warning here
//! stops the decode by unwinding, which the decode stage already contains with
//! `catch_unwind` (mozjpeg reports fatal errors the same way).
//!
//! The manager is built field by field, so no unsafe code is needed; the price is that we
//! cannot format libjpeg's own message text (that would need a raw-pointer read), so the
//! payload says which kind of problem it was.

use std::os::raw::{c_int, c_long};
use std::ptr;

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, msg_parm_union};

/// The panic payload of a warning.
pub(super) const CORRUPT: &str = "the entropy-coded data is truncated or corrupt";
/// The panic payload of a fatal libjpeg error.
pub(super) const FATAL: &str = "libjpeg refused the data";

/// An error manager for `Decompress::builder().with_err(..)`.
pub(super) fn error_mgr() -> jpeg_error_mgr {
    jpeg_error_mgr {
        error_exit: Some(error_exit),
        emit_message: Some(emit_message),
        output_message: Some(output_message),
        format_message: None,
        reset_error_mgr: Some(reset_error_mgr),
        msg_code: 0,
        msg_parm: msg_parm_union::default(),
        trace_level: 0,
        num_warnings: 0 as c_long,
        jpeg_message_table: ptr::null(),
        last_jpeg_message: 0,
        addon_message_table: ptr::null(),
        first_addon_message: 0,
        last_addon_message: 0,
    }
}

extern "C-unwind" fn error_exit(_cinfo: &mut jpeg_common_struct) {
    std::panic::resume_unwind(Box::new(FATAL));
}

extern "C-unwind" fn emit_message(_cinfo: &mut jpeg_common_struct, level: c_int) {
    // Negative levels are warnings; 0 and up are trace messages, which we ignore.
    if level < 0 {
        std::panic::resume_unwind(Box::new(CORRUPT));
    }
}

extern "C-unwind" fn output_message(_cinfo: &mut jpeg_common_struct) {}

extern "C-unwind" fn reset_error_mgr(_cinfo: &mut jpeg_common_struct) {}
