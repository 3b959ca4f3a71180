/*-------------------------------------------------------------------------
 *
 * args_text.c
 *	  The readable form of a call's stored arguments, "(42, 'abc', NULL)",
 *	  for the views and the trace.  It reads keyed bytes (key.c) with the
 *	  argument types' output functions.  No state, no locks; a type that may
 *	  refuse its stored bytes is the caller's to guard (views.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "cachier.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* One argument's readable form: numbers and booleans bare, the rest quoted. */
static void
append_readable(StringInfo out, TypeCodec *codec, const char *data, int len)
{
	Datum		value = cachier_decode(codec, data, len);
	Oid			outfn;
	bool		isvarlena;
	char	   *text;
	char		category;
	bool		preferred;

	getTypeOutputInfo(codec->type, &outfn, &isvarlena);
	text = OidOutputFunctionCall(outfn, value);
	get_type_category_preferred(codec->type, &category, &preferred);
	if (category == TYPCATEGORY_NUMERIC || category == TYPCATEGORY_BOOLEAN)
		appendStringInfoString(out, text);
	else
		appendStringInfoString(out, quote_literal_cstr(text));
}

/*
 * "(42, 'abc', NULL)" from stored arguments.  Arguments that can no longer
 * be read (the function changed) are shown as "?".
 */
char *
cachier_format_args_text(Oid funcid, const char *data, int len)
{
	FunctionInfo *info = cachier_function_info(funcid);
	StringInfoData out;
	int			pos = 0;
	int			i;

	initStringInfo(&out);
	appendStringInfoChar(&out, '(');
	for (i = 0; i < info->nargs; i++)
	{
		TypeCodec	codec;
		bool		isnull;
		int			start;
		uint32		vlen;

		if (i > 0)
			appendStringInfoString(&out, ", ");
		if (!cachier_next_arg(data, len, &pos, &isnull, &start, &vlen))
		{
			appendStringInfoChar(&out, '?');
			pos = len;
		}
		else if (isnull)
			appendStringInfoString(&out, "NULL");
		else
		{
			cachier_codec_init(&codec, info->argtypes[i], CurrentMemoryContext);
			append_readable(&out, &codec, data + start, vlen);
		}
	}
	appendStringInfoChar(&out, ')');
	return out.data;
}
