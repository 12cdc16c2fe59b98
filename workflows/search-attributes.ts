import { defineSearchAttributeKey } from '@temporalio/common';

/**
 * Search attributes every call's workflow carries, so the Web UI and
 * `temporal workflow list --query "PunctualTenant='acme' AND PunctualStatus='Failed'"` find a
 * tenant's calls. Few and bounded: the dev server allows about 10 Keyword and 3 Datetime.
 */
export const TENANT = defineSearchAttributeKey('PunctualTenant', 'KEYWORD');
export const STATUS = defineSearchAttributeKey('PunctualStatus', 'KEYWORD');
export const TAGS = defineSearchAttributeKey('PunctualTags', 'KEYWORD_LIST');
export const DUE_AT = defineSearchAttributeKey('PunctualDueAt', 'DATETIME');

/** For registering them: name → the CLI's type name. */
export const SEARCH_ATTRIBUTE_TYPES = {
  PunctualTenant: 'Keyword',
  PunctualStatus: 'Keyword',
  PunctualTags: 'KeywordList',
  PunctualDueAt: 'Datetime',
} as const;
