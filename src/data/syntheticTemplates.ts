// Sentence templates for the synthetic data set, written for this project. Each symptom has
// sentences that show it with an obvious keyword, sentences that show it without one (so a
// keyword lookup misses them), and hard negatives that use the keyword in another sense or
// negated (so a keyword lookup fires wrongly). Slots in braces are filled from FILLERS.

import type { Symptom } from './criteria.js';

export interface SymptomTemplates {
  /** Evidence of the symptom that contains one of KEYWORDS. */
  explicit: string[];
  /** Evidence of the symptom phrased without the keywords. */
  implicit: string[];
  /** Keyword present, symptom absent: negated, past and resolved, someone else, other sense. */
  hardNegative: string[];
}

export const FILLERS: Record<string, string[]> = {
  duration: [
    'two weeks',
    'a month',
    'months now',
    'weeks',
    'since the summer',
    'half a year',
    'most of this year',
    'since January',
  ],
  time: ['3am', '4 in the morning', 'sunrise', '5am', 'almost dawn', '2am'],
  hours: ['three', 'four', 'twelve', 'fourteen', 'two', 'fifteen'],
  person: [
    'my sister',
    'my roommate',
    'my dad',
    'a coworker',
    'my best friend',
    'my mom',
    'my brother',
    'my partner',
    'my neighbour',
  ],
  event: [
    'the breakup',
    'I lost my job',
    'moving out',
    'my exams',
    'the funeral',
    'the holidays',
    'the accident',
    'my divorce',
    'the move',
  ],
  activity: [
    'gaming',
    'painting',
    'playing guitar',
    'going to the gym',
    'reading',
    'hanging out with friends',
    'cooking',
    'hiking',
    'drawing',
    'football',
  ],
  food: ['pizza', 'dinner', 'breakfast', 'snacks', 'lunch', 'takeout', 'sweets'],
  weight: ['ten pounds', '15 pounds', 'a lot of weight', 'almost 8 kilos', 'twenty pounds'],
  place: [
    'the warehouse',
    'a coffee shop',
    'the hospital',
    'a call centre',
    'the library',
    'a supermarket',
    'an office downtown',
  ],
  month: ['March', 'October', 'spring', 'winter', 'last month', 'the summer'],
  thing: [
    'the rent',
    'my car',
    'the dishes',
    'my phone',
    'the bills',
    'my laptop',
    'the paperwork',
  ],
  pet: ['cat', 'dog', 'hamster', 'rabbit'],
  emoji: ['🙃', '😔', '🙂', '😂', '💀', '😭'],
};

export const TEMPLATES: Record<Symptom, SymptomTemplates> = {
  DEPRESSED_MOOD: {
    explicit: [
      'I feel so sad all the time and I can not shake it.',
      'Everything feels hopeless and has for {duration}.',
      'I have been depressed for {duration} and it is getting worse.',
      'I cry almost every day, usually over nothing.',
      'I feel empty inside, like there is nothing left of me.',
      'The sadness just sits on my chest from the moment I wake up.',
    ],
    implicit: [
      'There is a grey fog over everything and it never lifts.',
      'Nothing is going to get better and I have stopped pretending it will.',
      'I put on a smile at work and fall apart the second I get home.',
      'Most days I feel heavy and numb, like I am underwater.',
      'Even on good days there is this dark cloud following me around.',
    ],
    hardNegative: [
      'The movie was sad but honestly I enjoyed it a lot.',
      '{person} has been crying a lot since {event} and I try to help.',
      'I am not depressed, just annoyed about {thing}.',
      'I cried at the wedding but they were happy tears.',
      'I used to feel hopeless in school but that passed years ago.',
    ],
  },
  ANHEDONIA: {
    explicit: [
      'I lost all interest in {activity}, which used to be my favourite thing.',
      'Nothing is fun anymore, not even {activity}.',
      'I do not enjoy anything these days.',
      'I have no interest in seeing friends or doing {activity}.',
      'I stopped caring about {activity} and everything else I used to love.',
    ],
    implicit: [
      'My guitar has been sitting in the corner collecting dust for {duration}.',
      'Friends invite me out and I just make excuses and stay home.',
      'I go through the motions but it all feels pointless and flat.',
      'Things that used to light me up feel like chores now.',
    ],
    hardNegative: [
      'I really enjoy {activity} on weekends.',
      'I lost interest in {activity} but picked up {activity} instead and love it.',
      'Having fun with {person} last weekend was the highlight of my month.',
      '{person} says nothing is fun anymore, and I am worried about them.',
    ],
  },
  APPETITE_CHANGE: {
    explicit: [
      'I have no appetite at all and I lost {weight} without trying.',
      'I barely eat anymore, maybe one meal a day if that.',
      'I keep eating {food} all night even when I am not hungry.',
      'My appetite is gone and food tastes like cardboard.',
      'I gained {weight} since {event} from stress eating.',
    ],
    implicit: [
      'My jeans are falling off me and I did not change anything.',
      'I forget meals entirely and only notice when I feel dizzy.',
      'I find myself standing at the fridge at midnight for the third time.',
    ],
    hardNegative: [
      'I ate {food} with {person} and it was great.',
      'I lost {weight} on purpose by going to the gym and I am proud of it.',
      '{person} has no appetite since the surgery.',
      'My appetite is normal, it is just my mood that is off.',
    ],
  },
  SLEEP_ISSUES: {
    explicit: [
      'I have not slept more than {hours} hours a night for {duration}.',
      'My sleep is a mess, I am awake until {time} most nights.',
      'Insomnia has been brutal since {event}.',
      'I sleep {hours} hours a day and still want to stay in bed.',
      'I can not fall asleep no matter what I try.',
    ],
    implicit: [
      'I lie there staring at the ceiling until {time} every night.',
      'I keep waking up at {time} with my heart racing and stay up until the alarm.',
      'Some weekends I do not get out of bed until the afternoon, then nap again.',
    ],
    hardNegative: [
      'I slept great after {event}.',
      '{person} has trouble sleeping because of the new baby.',
      'My sleep is fine, it is everything else that is falling apart.',
      'I stayed awake until {time} for a concert and it was worth it.',
      'My {pet} sleeps on my bed every night.',
    ],
  },
  PSYCHOMOTOR: {
    explicit: [
      'I am so restless I pace around the apartment for hours.',
      'People tell me I move and talk really slowly now.',
      'I can not sit still, my legs are always shaking.',
      'Everything I do is in slow motion, even speaking feels slowed down.',
    ],
    implicit: [
      'At work {person} asked why I take forever to answer a simple question.',
      'I keep getting up and sitting down again, walking from room to room.',
    ],
    hardNegative: [
      'I was restless the night before my trip, but in a good way.',
      'The internet is so slow at {place}.',
      '{person} is a restless kid who never sits still.',
    ],
  },
  FATIGUE: {
    explicit: [
      'I am exhausted all the time, even after resting.',
      'I have no energy for anything.',
      'I feel tired every single day no matter how much I rest.',
      'Showering feels like running a marathon, I am that drained.',
      'I am constantly worn out and fatigued.',
    ],
    implicit: [
      'Just getting up to make tea wipes me out for an hour.',
      'My whole body feels heavy, like I am walking through mud.',
      'By noon I have nothing left in the tank.',
    ],
    hardNegative: [
      'I was tired after the hike but it felt amazing.',
      'I have plenty of energy in the mornings, it is the evenings that are hard.',
      '{person} is exhausted from working double shifts at {place}.',
      'I am tired of {person} borrowing money.',
    ],
  },
  WORTHLESSNESS: {
    explicit: [
      'I feel completely worthless.',
      'Everything is my fault and I hate myself for it.',
      'I am a failure at everything I try.',
      'I feel so guilty all the time, like I ruin everything.',
      'I am useless and a burden to everyone around me.',
      'I hate myself more every day.',
    ],
    implicit: [
      'Everyone would be better off without someone like me dragging them down.',
      'I replay every mistake I made and it proves how pathetic I am.',
      'I do not deserve the people in my life.',
      'Nobody could ever actually love me, I am not enough.',
    ],
    hardNegative: [
      'I felt guilty for eating the last slice of {food}, ha.',
      'My old phone is worthless now but I do not care.',
      '{person} calls themselves a failure but they are amazing.',
      'I used to hate myself as a teenager but therapy really helped.',
      'It was not my fault that {thing} broke, the landlord admitted it.',
    ],
  },
  COGNITIVE_ISSUES: {
    explicit: [
      'I can not concentrate on anything anymore.',
      'My focus is gone, I read the same page over and over.',
      'I can not make even simple decisions like what to eat.',
      'My mind is foggy and I keep forgetting things.',
    ],
    implicit: [
      'At work I stare at the screen and the words just slide off.',
      'Choosing between two shirts can take me half an hour.',
      'I lose track of what I am saying in the middle of a sentence.',
    ],
    hardNegative: [
      'I could not concentrate because of the construction noise outside.',
      'I made a big decision to move to {place} and I feel good about it.',
      '{person} has ADHD and struggles to focus at school.',
    ],
  },
  SUICIDAL_THOUGHTS: {
    explicit: [
      'I keep thinking about suicide.',
      'I want to die and I think about it every day.',
      'I have thought about killing myself more than once.',
      'I wrote a note and thought about how I would end my life.',
      'Sometimes I wish I would just not wake up and I think about ending it.',
    ],
    implicit: [
      'I looked up how many pills it would take.',
      'I stood on the bridge last week for a long time.',
      'If I were gone tomorrow, it would all finally stop.',
      'I have been giving my things away so nobody has to deal with them later.',
    ],
    hardNegative: [
      'I would never kill myself, I just want things to get easier.',
      'My {pet} died last year and I still miss him.',
      'This commute is killing me, {emoji}',
      '{person} lost a friend to suicide and we talked about it for hours.',
      'I died laughing at the video {person} sent.',
    ],
  },
};

/** Keywords a naive lookup would use; deliberately matched by explicit templates and hard negatives. */
export const KEYWORDS: Record<Symptom, string[]> = {
  DEPRESSED_MOOD: ['sad', 'hopeless', 'depressed', 'cry', 'empty'],
  ANHEDONIA: ['interest', 'enjoy', 'fun', 'lost interest', 'stopped caring'],
  APPETITE_CHANGE: ['appetite', 'eat', 'weight', 'lost', 'gained'],
  SLEEP_ISSUES: ['sleep', 'slept', 'insomnia', 'awake', 'asleep'],
  PSYCHOMOTOR: ['restless', 'slow', 'sit still', 'pace'],
  FATIGUE: ['tired', 'exhausted', 'energy', 'fatigue', 'drained'],
  WORTHLESSNESS: ['worthless', 'fault', 'failure', 'guilty', 'hate myself', 'useless'],
  COGNITIVE_ISSUES: ['concentrate', 'focus', 'decision', 'forget', 'foggy'],
  SUICIDAL_THOUGHTS: ['suicide', 'die', 'kill', 'end my life', 'ending it'],
};

/** Everyday sentences with no symptom content. */
export const NEUTRAL: string[] = [
  'I work at {place} and the shifts are long.',
  'We adopted a {pet} in {month}.',
  '{person} and I drove to the coast last weekend.',
  'I am 24 and live with {person}.',
  'I started a new job at {place} in {month}.',
  'Sorry for the long post, I do not really know who else to tell.',
  'English is not my first language so sorry for mistakes.',
  'I have been thinking about going back to school.',
  'My family moved a lot when I was a kid.',
  'I finally paid off {thing} last week.',
  'We had a barbecue at {person}’s place on Sunday.',
  'My therapist suggested I write things down, so here goes.',
  'I got a promotion at {place} which was nice I guess.',
  'Anyway, that is the background.',
  'I have a {pet} named Biscuit who is the best.',
  'The weather has been weird lately, rain one day and sun the next.',
  'I grew up in a small town and moved to the city for college.',
  'My parents divorced when I was twelve.',
  'I have been using this throwaway account for a while.',
  'I do not usually post here but I need to get this out.',
  'My phone screen cracked again {emoji}',
  'I had to fix {thing} myself because nobody else would.',
  'We watched a documentary about space last night.',
  'I volunteer at an animal shelter on Saturdays.',
  '{person} is getting married in {month}.',
  'I have two siblings and we are not very close.',
  'Last year I travelled to Japan for a week, the food was incredible.',
  'I am writing this on my lunch break at {place}.',
  'Edit: thanks for the replies, I read all of them.',
  'TL;DR at the bottom.',
  'I switched majors twice before settling on nursing.',
  'The bus to {place} was late again this morning.',
  'My grandmother taught me how to bake bread.',
  'I play {activity} with {person} sometimes.',
  'Rent went up again this year.',
  'I have known {person} since kindergarten.',
  'We are planning a trip for {month}.',
  'It has been a strange few months for everyone I know.',
  'My manager at {place} is actually pretty understanding.',
  'I keep a small garden on the balcony, mostly tomatoes.',
];

/** Notable content that is not one of the nine symptoms (ReDSM5's SPECIAL_CASE). */
export const SPECIAL_CASE_SENTENCES: string[] = [
  'Honestly I feel really proud of how far I have come.',
  'Lately my sex drive has been through the roof, which is new for me.',
  'I feel on top of the world today and I do not know why.',
];
