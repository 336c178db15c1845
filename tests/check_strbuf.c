/* Unit tests for strbuf. */
#include "config.h"

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

START_TEST(test_append_and_grow)
{
	strbuf b = STRBUF_INIT;

	ck_assert_str_eq(strbuf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		strbuf_putc(&b, (char)('a' + i % 26));
	ck_assert_uint_eq(b.len, 1000);
	ck_assert_int_eq(b.s[1000], '\0');
	ck_assert_int_eq(b.s[27], 'b');
	strbuf_reset(&b);
	ck_assert_str_eq(strbuf_str(&b), "");
	strbuf_free(&b);
}
END_TEST

START_TEST(test_printf)
{
	strbuf b = STRBUF_INIT;
	char *s;

	strbuf_puts(&b, "x=");
	strbuf_printf(&b, "%d %s", 42, "y");
	ck_assert_str_eq(b.s, "x=42 y");
	s = strbuf_detach(&b);
	ck_assert_str_eq(s, "x=42 y");
	ck_assert_ptr_null(b.s);
	free(s);
	s = strbuf_detach(&b);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(test_binary)
{
	strbuf b = STRBUF_INIT;

	strbuf_append(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	ck_assert_int_eq(memcmp(b.s, "a\0b", 4), 0);
	strbuf_free(&b);
}
END_TEST

/* Lists in messages: "a", "a or b", "a, b or c". */
START_TEST(test_put_item)
{
	static const char *const words[] = {"a", "b", "c"};
	static const char *const want[] = {"", "a", "a or b", "a, b or c"};

	for (size_t n = 0; n <= 3; n++) {
		strbuf b = STRBUF_INIT;

		for (size_t i = 0; i < n; i++)
			strbuf_put_item(&b, i, n, words[i]);
		ck_assert_str_eq(strbuf_str(&b), want[n]);
		strbuf_free(&b);
	}
}
END_TEST

static Suite *
strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_append_and_grow);
	tcase_add_test(tc, test_printf);
	tcase_add_test(tc, test_binary);
	tcase_add_test(tc, test_put_item);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run(strbuf_suite());
}
