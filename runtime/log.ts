/** The unit of data on a connection: a JSON object of key-value pairs. */
export type Log = { [field: string]: unknown };

/** A JSON value: what queries carry and answer. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
