// Texts the tokenizer parity tests run through every tokenizer: awkward unicode, emoji, whitespace
// runs, newlines and tabs, numbers, strings that look like special tokens.

export const TRICKY_TEXTS = [
  'I feel tired 😭😭😭 and my cat 🐈‍⬛ is the only one who gets it 👩‍👩‍👧',
  'Flags 🇺🇸🇯🇵 and skin tones 👍🏽 and keycaps 1️⃣',
  'Combining marks: e\u0301 a\u0308 Z\u0336a\u0336l\u0336g\u0336o\u0336 n\u0303',
  'CJK: 我睡不着，已经好几个星期了。日本語のテキスト。한국어 문장입니다.',
  'RTL: אני לא ישן כבר שבועות. لا أستطيع النوم منذ أسابيع. \u202Eevil\u202C',
  'Zero width: a\u200Bb\u200Cc\u200Dd\u2060e\uFEFFf and soft\u00ADhyphen',
  'Spaces:  two  spaces,\ttab,\nnewline, \u00A0nbsp, \u3000ideographic',
  'Controls \u0007 bell \u0000 nul and \u007F del',
  'Math 𝓗𝓮𝓵𝓵𝓸 and fullwidth ＡＢＣ and ligature ﬁ and superscript ² ½',
  '   leading and trailing   ',
  '▁already▁has▁metaspace▁',
  '<s> </s> <unk> look like special tokens',
  '<criterion> and <|im_start|> and <think> look like added tokens <criterion>',
  'Lone surrogate-free astral: 𐍈 𝄞 🀄',
  'x',
  '',
];

export const WHITESPACE_AND_DIGIT_TEXTS = [
  'a          b                                c',
  '\n\n\nthree newlines then text\n\n',
  'tabs\t\tand\t\t\ttabs\t',
  'mixed \t \n \r\n \u00A0 \u2003 whitespace',
  '                                                                ',
  'I slept 3 hours on 12/05/2024, took 1,234,567 steps and 3.14159 pills at 04:30.',
  'numbers: 0 1 22 333 4444 55555 666666 7777777',
  'lists:\n1. first\n2. second\n  10. tenth',
  'after spaces:  3 and   42 and\t\t7',
  'unicode digits: ٣ ४ ５ Ⅻ ½ ²',
  'phone +1 (555) 010-9999 and 100% of 2x',
];
