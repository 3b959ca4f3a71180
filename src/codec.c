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
 * The commonest types (integers, floats, booleans, dates and times, text,
 * bytea) take a fast path that writes exactly the bytes their send
 * function would and reads them back without raising errors; a stored
 * text or bytea result is served as the very varlena read from storage.
 *
 * Text-like send and receive functions convert between the server and
 * the client encoding.  Keys and stored values must not depend on a
 * session's client_encoding, so the conversion is switched off (the
 * client encoding set to the server's) around them and always restored.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "access/htup_details.h"
#include "access/detoast.h"
#include "access/transam.h"
#include "cachier.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

static FastForm
fast_form(Oid type)
{
	switch (type)
	{
		case BOOLOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return FAST_FIXED;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return FAST_TEXT;
		case BYTEAOID:
			return FAST_BYTEA;
		default:
			return FAST_NONE;
	}
}

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
	codec->fast = fast_form(type);
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

static void append_fixed(StringInfo buf, TypeCodec *codec, Datum value);

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

/*
 * The binary form of a fast-path value as a bytea: a varlena's content
 * (text in the server encoding, as textsend writes it when the client
 * encoding is pinned to the server's), or a fixed-size value's big-endian
 * bytes.  One copy, no send function, no growing buffer.
 */
static bytea *
encode_fast(TypeCodec *codec, Datum value)
{
	StringInfoData buf;
	struct varlena *v;
	bytea	   *result;
	Size		len;

	if (codec->fast == FAST_FIXED)
	{
		initStringInfo(&buf);
		appendStringInfoSpaces(&buf, VARHDRSZ);
		append_fixed(&buf, codec, value);
		SET_VARSIZE(buf.data, buf.len);
		return (bytea *) buf.data;
	}
	v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
	len = VARSIZE_ANY_EXHDR(v);
	result = palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), VARDATA_ANY(v), len);
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return result;
}

/* The send (or output) function's bytes, the client encoding pinned. */
static bytea *
encode_with_function(TypeCodec *codec, Datum value)
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

bytea *
cachier_encode(TypeCodec *codec, Datum value)
{
	if (codec->fast != FAST_NONE)
		return encode_fast(codec, value);
	return encode_with_function(codec, value);
}

static void
append_be32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	appendBinaryStringInfo(buf, (char *) &be, sizeof(be));
}

/* What int2send, int4send, float8send, ... write for this value. */
static void
append_fixed(StringInfo buf, TypeCodec *codec, Datum value)
{
	uint64		be64;
	uint16		be16;
	char		b;

	switch (codec->typlen)
	{
		case 1:
			b = DatumGetBool(value) ? 1 : 0;
			appendBinaryStringInfo(buf, &b, 1);
			break;
		case 2:
			be16 = pg_hton16((uint16) DatumGetInt16(value));
			appendBinaryStringInfo(buf, (char *) &be16, 2);
			break;
		case 4:
			append_be32(buf, DatumGetUInt32(value));
			break;
		default:
			be64 = pg_hton64((uint64) DatumGetInt64(value));
			appendBinaryStringInfo(buf, (char *) &be64, 8);
			break;
	}
}

/* Append the 4-byte length and the encoded bytes of value to buf. */
/*
 * The size of a value as it is held (a varlena's size once detoasted and
 * decompressed, without reading it): its encoded form is of the same order,
 * so a value far beyond a limit is refused before it is encoded.
 */
static Size
held_size(TypeCodec *codec, Datum value)
{
	if (codec->typlen > 0)
		return codec->typlen;
	if (codec->typlen == -1)
		return toast_raw_datum_size(value) - VARHDRSZ;
	return strlen(DatumGetCString(value));
}

/*
 * Append a value as its 4-byte big-endian length and its encoded bytes,
 * unless buf would then hold more than limit bytes: false then, and buf is
 * left as it was.  The limit keeps a key far below MaxAllocSize, so an
 * argument too large to be keyed makes the call skip the cache instead of
 * failing with "out of memory".
 */
bool
cachier_append_encoded(StringInfo buf, TypeCodec *codec, Datum value, Size limit)
{
	bytea	   *bytes;
	struct varlena *text;
	Size		room = limit > (Size) buf->len + 4 ? limit - buf->len - 4 : 0;

	if (held_size(codec, value) > room)
		return false;
	if (codec->fast == FAST_FIXED)
	{
		append_be32(buf, codec->typlen);
		append_fixed(buf, codec, value);
		return true;
	}
	if (codec->fast == FAST_TEXT || codec->fast == FAST_BYTEA)
	{
		text = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(value));
		append_be32(buf, VARSIZE_ANY_EXHDR(text));
		appendBinaryStringInfo(buf, VARDATA_ANY(text), VARSIZE_ANY_EXHDR(text));
		return true;
	}
	bytes = cachier_encode(codec, value);
	if (VARSIZE(bytes) - VARHDRSZ > room)
	{
		pfree(bytes);
		return false;
	}
	append_be32(buf, VARSIZE(bytes) - VARHDRSZ);
	appendBinaryStringInfo(buf, VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);
	pfree(bytes);
	return true;
}

static uint64
read_be(const char *data, int len)
{
	uint64		v = 0;
	int			i;

	for (i = 0; i < len; i++)
		v = (v << 8) | (uint8) data[i];
	return v;
}

/*
 * Whether s holds only ASCII characters other than NUL, which every
 * server encoding accepts as they are.  Checked 32 bytes at a time, with
 * SSE2 where the compiler has it (every x86-64): a large stored text is
 * read once more on every hit, and byte by byte that would cost more than
 * reading it from storage.
 */
static bool
plain_ascii(const char *s, Size len)
{
	const char *p = s;
	Size		left = len;
	int			bad = 0;
#ifdef __SSE2__
	__m128i		high = _mm_setzero_si128();
	__m128i		nul = _mm_setzero_si128();
	__m128i		zero = _mm_setzero_si128();

	for (; left >= 32; p += 32, left -= 32)
	{
		__m128i		a = _mm_loadu_si128((const __m128i *) p);
		__m128i		b = _mm_loadu_si128((const __m128i *) (p + 16));

		high = _mm_or_si128(high, _mm_or_si128(a, b));
		nul = _mm_or_si128(nul, _mm_or_si128(_mm_cmpeq_epi8(a, zero),
											 _mm_cmpeq_epi8(b, zero)));
	}
	bad = _mm_movemask_epi8(_mm_or_si128(high, nul));
#else
	uint64		high = 0;
	uint64		nul = 0;
	uint64		w[4];
	int			i;

	for (; left >= sizeof(w); p += sizeof(w), left -= sizeof(w))
	{
		memcpy(w, p, sizeof(w));
		for (i = 0; i < 4; i++)
		{
			high |= w[i];
			nul |= (w[i] - UINT64CONST(0x0101010101010101)) & ~w[i];
		}
	}
	bad = ((high | nul) & UINT64CONST(0x8080808080808080)) != 0;
#endif
	for (; left > 0; p++, left--)
		bad |= IS_HIGHBIT_SET(*p) || *p == '\0';
	return bad == 0;
}

/* Whether text is valid in the server encoding: plain ASCII, or verified. */
static bool
valid_text(const char *s, Size len)
{
	return plain_ascii(s, len) || pg_verifymbstr(s, len, true);
}

/*
 * Decode a fast-path type without raising errors: false if the bytes are
 * not a valid value (wrong length, invalid text in the server encoding).
 */
bool
cachier_decode_fast(TypeCodec *codec, const char *data, int len, Datum *value)
{
	uint64		v;

	if (codec->fast == FAST_TEXT || codec->fast == FAST_BYTEA)
	{
		if (codec->fast == FAST_TEXT && !valid_text(data, len))
			return false;
		*value = PointerGetDatum(cstring_to_text_with_len(data, len));
		return true;
	}
	if (len != codec->typlen)
		return false;
	v = read_be(data, len);
	switch (len)
	{
		case 1:
			*value = BoolGetDatum(v != 0);
			break;
		case 2:
			*value = Int16GetDatum((int16) v);
			break;
		case 4:
			*value = codec->type == OIDOID ? ObjectIdGetDatum((Oid) v) :
				Int32GetDatum((int32) v);
			break;
		default:
			*value = Int64GetDatum((int64) v);
			break;
	}
	return true;
}

/*
 * cachier_decode_fast for a stored value given as its varlena (4-byte
 * header, palloc'd by the caller, which hands it over): the value of a
 * text or bytea result is that varlena itself, since their binary form is
 * their content, so a large value is checked (text: its encoding) but
 * never copied again.
 */
bool
cachier_decode_stored(TypeCodec *codec, bytea *bytes, Datum *value)
{
	if (codec->fast != FAST_TEXT && codec->fast != FAST_BYTEA)
		return cachier_decode_fast(codec, VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ, value);
	if (codec->fast == FAST_TEXT &&
		!valid_text(VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ))
		return false;
	*value = PointerGetDatum(bytes);
	return true;
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
