//! Tabwriter corpus; expectations from Go 1.19 via `oracle/regen.py`.

use super::{check_tab, finish};

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn corpus() {
    // BEGIN CORPUS tab
    check_tab("ID\tNAME\tDESCRIPTION\tENABLED\n5ae1c0f4b1e2\tvieux/sshfs:latest\tsshFS plugin for Docker\tfalse\n0123456789ab\tx/y:1\tshort\ttrue\n", 10, 1, 3,
        "ID             NAME                 DESCRIPTION               ENABLED\n5ae1c0f4b1e2   vieux/sshfs:latest   sshFS plugin for Docker   false\n0123456789ab   x/y:1                short                     true\n");
    check_tab("a\tb\tc\naaa\tbbbbb\tc\n", 0, 8, 1,
        "a   b     c\naaa bbbbb c\n");
    check_tab("a\t\nbb\t\n", 0, 8, 1,
        "a  \nbb \n");
    check_tab("a\tb\nno tabs here\nccc\td\n", 0, 8, 1,
        "a b\nno tabs here\nccc d\n");
    check_tab("a\tb\ncc\td", 0, 8, 1,
        "a  b\ncc d");
    check_tab("é\tx\nab\ty\n世界\tz\n", 0, 8, 1,
        "é  x\nab y\n世界 z\n");
    check_tab("a\tb\u{c}ccc\td\n", 0, 8, 1,
        "a b\nccc d\n");
    check_tab("", 0, 8, 1,
        "");
    check_tab("a\tb\tc\nd\te\nf\n", 0, 8, 1,
        "a b c\nd e\nf\n");
    check_tab("a\tb\n", 10, 1, 0,
        "a         b\n");
    check_tab("a\tb\t", 0, 8, 1,
        "a b");
    check_tab("x\ty\tz\n\tq\t\n\t\tw\n", 2, 8, 2,
        "x  y  z\n   q  \n      w\n");
    check_tab("NAME\tDESCRIPTION\n", 10, 1, 3,
        "NAME      DESCRIPTION\n");
    check_tab("a\tbb\tc\nxx\ty\nlonger line\n1\t2\t3\t4\n", 4, 1, 1,
        "a   bb  c\nxx  y\nlonger line\n1   2   3   4\n");
    check_tab("a\u{b}b\nlong\u{b}c\n", 0, 8, 1,
        "a    b\nlong c\n");
    check_tab("\n\n\ta\n", 0, 8, 1,
        "\n\n a\n");
    // END CORPUS tab
    finish();
}
