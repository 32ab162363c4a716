// Package ctrlchar decides whether text an agent or operator hands in may be
// stored and shown again: it refuses control characters (C0 U+0000–U+001F,
// DEL U+007F and C1 U+0080–U+009F) and bytes that are not UTF-8.
//
// Such text ends up in operator terminals (dromos connections list), logs
// and browsers. A control character there can clear or spoof the screen or
// set the window title, and a stray byte 0x80–0x9F that is not part of a
// UTF-8 sequence is read as a C1 control (0x9B is CSI) by terminals in
// eight-bit mode, so both are refused at input rather than escaped later.
// No field Dromos accepts needs a tab or newline.
package ctrlchar
