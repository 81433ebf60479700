/* tests/model/test_json.c: the strict JSON parser (core/json.c): values, line numbers,
 * escapes, exact integers, and one check per rejected form with its message. */
#include <string.h>
#include "tests/harness/harness.h"
#include "core/json.h"

static dsk_status parse(const char *s, dsk_json **out) { return dsk_json_parse(s, strlen(s), "t.json", out); }

static void bad(const char *text, const char *msg)
{
    dsk_json *j = NULL;
    dsk_t_expect_error(parse(text, &j), DSK_ERR_FORMAT, msg, __FILE__, __LINE__, text);
    DSK_T_CHECK(j == NULL, "failed parse of %s left a value", text);
}

int main(void)
{
    dsk_json *j;
    const char *ok = "{\n \"a\": [1, -2, 3.5e2, true, false, null],\n \"b\": {\"c\": \"x\\u00e9\\ud83d\\ude00\\n\"},\n"
                     " \"big\": 9007199254740993, \"neg\": -9223372036854775808, \"huge\": 18446744073709551616\n}";
    if (DSK_T_OK(parse(ok, &j))) {
        const dsk_json *a = dsk_json_get(j, "a"), *c = dsk_json_get(dsk_json_get(j, "b"), "c");
        DSK_T_CHECK(a && a->type == DSK_JSON_ARRAY && a->n == 6 && a->line == 2, "array a: type/len/line");
        DSK_T_CHECK(a && a->items[0].is_int && a->items[0].i64 == 1 && a->items[1].i64 == -2, "ints");
        DSK_T_CHECK(a && !a->items[2].is_int && a->items[2].num == 350.0, "3.5e2 is 350, not an integer");
        DSK_T_CHECK(a && a->items[3].type == DSK_JSON_BOOL && a->items[3].boolean && !a->items[4].boolean, "bools");
        DSK_T_CHECK(a && a->items[5].type == DSK_JSON_NULL, "null");
        DSK_T_CHECK(c && c->line == 3 && !strcmp(c->str, "x\xc3\xa9\xf0\x9f\x98\x80\n"), "escapes decoded to UTF-8");
        const dsk_json *big = dsk_json_get(j, "big"), *neg = dsk_json_get(j, "neg"), *huge = dsk_json_get(j, "huge");
        DSK_T_CHECK(big && big->is_int && big->i64 == 9007199254740993LL, "2^53+1 exact");
        DSK_T_CHECK(neg && neg->is_int && neg->i64 == INT64_MIN, "INT64_MIN exact");
        DSK_T_CHECK(huge && !huge->is_int, "2^64 is not an int64");
        DSK_T_CHECK(!dsk_json_get(j, "missing") && !dsk_json_get(a, "x"), "absent key / non-object lookup");
        dsk_json_free(j);
    }
    if (DSK_T_OK(parse("  \"\\u0000x\"  ", &j))) {
        DSK_T_CHECK(j->str_len == 2 && j->str[0] == 0, "\\u0000 kept inside a string value");
        dsk_json_free(j);
    }

    bad("", "t.json: line 1, column 1: unexpected end");
    bad("[1, 2,]", "trailing comma in array");
    bad("{\"a\": 1,}", "trailing comma in object");
    bad("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"");
    bad("[01]", "leading zeros");
    bad("[1.]", "digit after the decimal point");
    bad("[1e]", "digit in the exponent");
    bad("[-]", "expected a digit");
    bad("[NaN]", "unexpected character");
    bad("[1e999]", "number out of range");
    bad("\"a\tb\"", "control character");
    bad("\"\\x\"", "invalid escape");
    bad("\"\\u12g4\"", "4 hex digits");
    bad("\"\\udc00\"", "unpaired low surrogate");
    bad("\"\\ud800x\"", "high surrogate not followed");
    bad("\"\xc3\x28\"", "invalid UTF-8");
    bad("\"\xe0\x80\xaf\"", "invalid UTF-8"); /* overlong */
    bad("\"abc", "unterminated string");
    bad("{\"a\" 1}", "expected ':'");
    bad("{1: 2}", "expected a string key");
    bad("[1 2]", "expected ',' or ']'");
    bad("{\"a\": 1 \"b\": 2}", "expected ',' or '}'");
    bad("tru", "expected true or false");
    bad("nul", "expected null");
    bad("{} x", "unexpected text after");
    bad("// c\n{}", "unexpected character");
    bad("{\"\\u0000\": 1}", "object key contains");
    bad("\n\n  [1,,2]", "line 3, column 6");
    char deep[200];
    memset(deep, '[', 66);
    deep[66] = 0;
    bad(deep, "nesting deeper than 64");
    DSK_T_ERR(dsk_json_parse("{}", 2, "t.json", NULL), DSK_ERR_INVALID_ARG, "out is NULL");
    return dsk_t_finish();
}
