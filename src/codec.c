/*-------------------------------------------------------------------------
 *
 * codec.c
 *	  Turns values into bytes and back: arguments (for keys) and results
 *	  (for storage).
 *
 * The binary (send/receive) form is used wherever a type has one, the
 * text form otherwise and for type "record", whose binary form refers to
 * a backend-local row type.  Both are PostgreSQL's own forms: reading a
 * stored value runs the type's receive or input function, never code that
 * the stored bytes choose.
 *
 * Text-like send and receive functions convert between the server and
 * the client encoding.  Keys and stored values must not depend on a
 * session's client_encoding, so the conversion is switched off (the
 * client encoding set to the server's) around them and always restored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "cachier.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

void
cachier_codec_init(TypeCodec *codec, Oid type, MemoryContext mcxt)
{
	HeapTuple	tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
	Form_pg_type form;
	Oid			encode;
	Oid			decode;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for type %u", type);
	form = (Form_pg_type) GETSTRUCT(tuple);
	codec->type = type;
	codec->typlen = form->typlen;
	codec->typbyval = form->typbyval;
	codec->ioparam = getTypeIOParam(tuple);
	codec->binary = OidIsValid(form->typsend) && OidIsValid(form->typreceive) &&
		type != RECORDOID;
	encode = codec->binary ? form->typsend : form->typoutput;
	decode = codec->binary ? form->typreceive : form->typinput;
	ReleaseSysCache(tuple);

	fmgr_info_cxt(encode, &codec->encode, mcxt);
	fmgr_info_cxt(decode, &codec->decode, mcxt);
}

/* Make the client encoding the server's; returns what to restore, or -1. */
static int
pin_encoding(void)
{
	int			client = pg_get_client_encoding();

	if (client == GetDatabaseEncoding())
		return -1;
	SetClientEncoding(GetDatabaseEncoding());
	return client;
}

static void
unpin_encoding(int saved)
{
	if (saved >= 0)
		SetClientEncoding(saved);
}

static bytea *
encode_pinned(TypeCodec *codec, Datum value)
{
	char	   *text;
	bytea	   *result;
	size_t		len;

	if (codec->binary)
		return SendFunctionCall(&codec->encode, value);
	text = OutputFunctionCall(&codec->encode, value);
	len = strlen(text);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), text, len);
	pfree(text);
	return result;
}

bytea *
cachier_encode(TypeCodec *codec, Datum value)
{
	int			saved = pin_encoding();
	bytea	   *result;

	if (saved < 0)
		return encode_pinned(codec, value);
	PG_TRY();
	{
		result = encode_pinned(codec, value);
	}
	PG_FINALLY();
	{
		unpin_encoding(saved);
	}
	PG_END_TRY();
	return result;
}

/* Append the 4-byte length and the encoded bytes of value to buf. */
void
cachier_append_encoded(StringInfo buf, TypeCodec *codec, Datum value)
{
	bytea	   *bytes = cachier_encode(codec, value);
	uint32		len = VARSIZE(bytes) - VARHDRSZ;
	uint32		be = pg_hton32(len);

	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
	appendBinaryStringInfo(buf, VARDATA(bytes), len);
	pfree(bytes);
}

static Datum
decode_pinned(TypeCodec *codec, const char *data, int len)
{
	StringInfoData buf;
	Datum		result;

	/* both receive and input functions want a terminated copy */
	buf.data = palloc(len + 1);
	memcpy(buf.data, data, len);
	buf.data[len] = '\0';
	buf.len = len;
	buf.maxlen = len + 1;
	buf.cursor = 0;
	if (!codec->binary)
		return InputFunctionCall(&codec->decode, buf.data, codec->ioparam, -1);
	result = ReceiveFunctionCall(&codec->decode, &buf, codec->ioparam, -1);
	if (buf.cursor != buf.len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("incorrect binary data format in a cached value of type %s",
						format_type_be(codec->type))));
	return result;
}

Datum
cachier_decode(TypeCodec *codec, const char *data, int len)
{
	int			saved = pin_encoding();
	Datum		result;

	if (saved < 0)
		return decode_pinned(codec, data, len);
	PG_TRY();
	{
		result = decode_pinned(codec, data, len);
	}
	PG_FINALLY();
	{
		unpin_encoding(saved);
	}
	PG_END_TRY();
	return result;
}

/*
 * Whether reading a value we wrote ourselves can still fail: only for
 * types whose definition can change under it (user-defined types, enums,
 * domains with new constraints, composites with new columns).  Built-in
 * base types read back whatever their own send function wrote.
 */
bool
cachier_decode_may_fail(Oid type)
{
	return type >= FirstNormalObjectId || type == RECORDOID ||
		get_typtype(type) != TYPTYPE_BASE;
}
