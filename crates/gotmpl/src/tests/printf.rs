//! `printf` corpus; expectations from Go 1.19 via `oracle/regen.py`.

use super::{PLUGIN, check, finish};

#[test]
#[rustfmt::skip]
#[allow(clippy::too_many_lines)]
fn corpus() {
    // BEGIN CORPUS printf
    check(r#"{{printf "%v|%s|%d|%q|%t|%x|%X|%c|%%" 1 "s" 42 "q" true 255 255 65}}"#, "{}",
        r#"1|s|42|"q"|true|ff|FF|A|%"#);
    check(r#"{{printf "%f|%e|%g|%E|%G" 3.14159 31415.9 0.000031 1e6 1e-7}}"#, "{}",
        "3.141590|3.141590e+04|3.1e-05|1.000000E+06|1E-07");
    check(r#"{{printf "%5d|%-5d|%05d|%+d|% d|%x|%#x|%#o|%b|%o|%O" 42 42 42 42 42 -255 255 8 5 8 8}}"#, "{}",
        "   42|42   |00042|+42| 42|-ff|0xff|010|101|10|0o10");
    check(r#"{{printf "%08.3f|%-8.2f|%+.1e|%.3g|%.2e|%6.2f|%+.2f|% .2f|%08.2f" 3.14159 3.14159 12345.678 3.14159 0.000123 -3.14159 3.0 3.0 -3.14159}}"#, "{}",
        "0003.142|3.14    |+1.2e+04|3.14|1.23e-04| -3.14|+3.00| 3.00|-0003.14");
    check(r#"{{printf "%v %v %v %v %v %v %v" 100000.0 1e6 0.0001 0.00001 1234567.0 1.5 100.0}}"#, "{}",
        "100000 1e+06 0.0001 1e-05 1.234567e+06 1.5 100");
    check(r#"{{printf "%g %g %.3g %.10g %g" 0.0 123456789.0 1e6 1.5 1e21}}"#, "{}",
        "0 1.23456789e+08 1e+06 1.5 1e+21");
    check(r#"{{printf "%.12s|%-10s|%10s|%.2s|%5.1s|" "abcdefghijklmnop" "ab" "ab" "héllo" "xyz"}}"#, "{}",
        "abcdefghijkl|ab        |        ab|hé|    x|");
    check(r#"{{printf "%q|%+q|%#q|%#q" "a\"b\n" "héllo" "abc" "a`b"}}"#, "{}",
        r#""a\"b\n"|"h\u00e9llo"|`abc`|"a`b""#);
    check(r#"{{printf "%x|% x|%#x|%X|% #x|%.1x" "hi" "hi" "hi" "hi" "hi" "hi"}}"#, "{}",
        "6869|68 69|0x6869|6869|0x68 0x69|68");
    check(r#"{{printf "%c|%q|%U|%#U|%q" 65 65 128512 128512 10}}"#, "{}",
        r"A|'A'|U+1F600|U+1F600 '😀'|'\n'");
    check(r#"{{printf "%d|%s|%d|%z|%d" "abc" 5 nil 1}}"#, "{}",
        "%!d(string=abc)|%!s(int=5)|%!d(<nil>)|%!z(int=1)|%!d(MISSING)");
    check(r#"{{printf "%d %d" 1}}"#, "{}",
        "1 %!d(MISSING)");
    check(r#"{{printf "%d" 1 "x" 2 nil}}"#, "{}",
        "1%!(EXTRA string=x, int=2, <nil>)");
    check(r#"{{printf "abc%" 1}}"#, "{}",
        "abc%!(NOVERB)%!(EXTRA int=1)");
    check(r#"{{printf "%v %d %5d %s" .A .A .A .B}}"#, r#"{"A":[1,22],"B":["a",1]}"#,
        "[1 22] [1 22] [    1    22] [a %!s(int=1)]");
    // objects print as Go structs (Docker formats typed structs), not map[...]
    // Deviation; Go gives: "map[a:1 b:x]|map[a:1 b:x]|map[a:%!s(int=1) b:x]"
    check(r#"{{printf "%v|%+v|%s" .O .O .O}}"#, r#"{"O":{"a":1,"b":"x"}}"#,
        "{1 x}|{a:1 b:x}|{%!s(int=1) x}");
    check(r#"{{printf "%*d|%-*d|%.*f|%*d" 5 1 4 2 2 3.14159 "x" 1}}"#, "{}",
        "    1|2   |3.14|%!(BADWIDTH)1");
    check(r#"{{printf "%[2]s %[1]s|%[3]d" "a" "b"}}"#, "{}",
        "b a|%!d(BADINDEX)");
    check(r#"{{printf "%t|%v|%5t|%d" true false true true}}"#, "{}",
        "true|false| true|%!d(bool=true)");
    check(r#"{{printf "%.0f %.2f %.1f %.0f %.1f" 2.5 0.125 0.25 3.5 0.05}}"#, "{}",
        "2 0.12 0.2 4 0.1");
    check(r#"{{printf "%e|%g|%.3d|%8.3d|%.0d|%-05d|" 0.0 0.0 7 7 0 3}}"#, "{}",
        "0.000000e+00|0|007|     007||3    |");
    check(r#"{{printf "%05s|%-5s|%5.1f%%" "ab" "ab" 99.55}}"#, "{}",
        "000ab|ab   | 99.5%");
    check(r#"{{printf "%s|%v|%d" .S .N .N}}"#, r#"{"S":["a","b"],"N":null}"#,
        "[a b]|<nil>|%!d(<nil>)");
    check(r#"{{printf "%T %T %T %T %T %T" 1 "a" 1.5 true .A nil}}"#, r#"{"A":[1]}"#,
        "int string float64 bool []interface {} <nil>");
    // hex float verbs (%x %X %b on floats) are not supported
    // Deviation; Go gives: "0x1.8p+00"
    check(r#"{{printf "%x" 1.5}}"#, "{}",
        "%!x(float64=1.5)");
    check(r#"{{printf "%6.2v|%-8v|%08v" 3.14159 "ab" 42}}"#, "{}",
        "   3.1|ab      |00000042");
    check(r#"{{printf "%s" .Id | len}}"#, PLUGIN,
        "64");
    check(r#"{{printf "%-20s%s" .Name .Config.Interface.Socket}}"#, PLUGIN,
        "vieux/sshfs:latest  sshfs.sock");
    check(r#"{{printf "%d items" (len .Settings.Env)}}"#, PLUGIN,
        "1 items");
    check(r#"{{printf "%v" .Config.Interface.Types}}"#, PLUGIN,
        "[docker.volumedriver/1.0]");
    check(r#"{{printf "%q" .Settings.Env}}"#, PLUGIN,
        r#"["DEBUG=0"]"#);
    check(r#"{{printf "%5.2f%%|%x|%X" 12.3456 "é" -26}}"#, "{}",
        "12.35%|c3a9|-1A");
    check(r#"{{printf "%!|%-+5d|%+-5d|%0-5d|" 1 2 3}}"#, "{}",
        "%!!(int=1)|+2   |+3   |%!d(MISSING)|");
    check(r#"{{printf "%.3v|%.1q|%10.4q|" "abcdef" "xyz" "abcdef"}}"#, "{}",
        r#"abc|"x"|    "abcd"|"#);
    // END CORPUS printf
    finish();
}
